"""The HTTP wing: everything between a model call and the bytes on the wire.

``transport`` (the Transport protocol, requests/responses, the exception-table
machinery), ``urllib3_transport`` and ``requests_transport`` (the two transports, each
with its exception table), ``bounded`` (the total deadline and the body size cap both
transports hold), ``retry`` (policies and the retry loop), ``error_responses``
(HTTP error bodies to typed errors), ``auth`` (client credentials, bearer tokens),
``tokens`` (the token-store protocol, the in-memory store, single-flight refresh and
polled locks), ``file_store`` and ``redis_store`` (shared token stores), ``rate_limit``
(the RateLimiter protocol, TokenBucket), ``redis_rate_limit`` (one rate budget for a
fleet), ``retry_budget`` (retries bounded per client) and ``sse`` (the server-sent events
parser).

Nothing here imports the client, the loop or the tools wing.
"""
