"""Every default of the SDK, named once."""

DEFAULT_PATH = "/api/v2/ai-builder/llm-gateway/conversations"
DEFAULT_MODEL = "gpt-4o"

DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 60.0
# Connections kept per host: at least the number of threads that share one client (more
# threads than this open extra connections, which urllib3 discards with a warning).
DEFAULT_POOL_MAXSIZE = 64
# A larger response body (its decoded size) is refused without being read whole.
DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024

DEFAULT_MAX_ATTEMPTS = 4
DEFAULT_BASE_DELAY = 0.5
DEFAULT_MAX_DELAY = 8.0
DEFAULT_MAX_RETRY_AFTER = 60.0
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})

# Refresh a token this many seconds before the server says it expires (the Go SDK uses 60).
TOKEN_EXPIRY_MARGIN = 60.0
# For tokens shorter-lived than twice the margin, refresh after this fraction of the lifetime.
TOKEN_EXPIRY_FRACTION = 0.5

DEFAULT_MAX_ITERATIONS = 5
DEFAULT_TOOL_TIMEOUT = 5.0
DEFAULT_TOOL_WORKERS = 8
DEFAULT_MAX_TOOL_RESULT_CHARS = 4096
DEFAULT_MAX_REPEATED_CALLS = 3
DEFAULT_OUTPUT_RETRIES = 2  # corrections asked for when a structured answer is invalid

# Genesys Cloud documents a 512,000-byte request body limit.
MAX_REQUEST_BODY_BYTES = 512_000

USER_AGENT = "genesys-gateway-python/0.1.0"

# Tools subsystem.
VALIDATOR_CACHE_SIZE = 1024  # distinct compiled JSON schemas kept (oldest evicted first)
#: The problem reported for data nested too deeply to copy, validate or serialise.
NESTED_TOO_DEEPLY = "nested too deeply"
MAX_TOOL_ERROR_CHARS = 300  # error text sent to the model for a failed tool call
TOOL_THREAD_NAME_PREFIX = "genesys-gateway-tool"
TOOL_WORKER_IDLE_SECONDS = 60.0  # an idle tool worker thread exits after this long

# Rate limits and retry budgets.
DEFAULT_MAX_PAUSE = 60.0  # a 429's Retry-After pauses a rate limiter at most this long
DEFAULT_RATE_LIMIT_KEY = "genesys_gateway:rate_limit"  # RedisRateLimiter's Redis key
DEFAULT_RETRY_RATIO = 0.2  # retries allowed per request sent in the window
DEFAULT_RETRY_MIN_PER_SECOND = 10.0  # retries allowed per second whatever the traffic
DEFAULT_RETRY_WINDOW = 10.0  # seconds of requests a RetryBudget remembers

# Conversation state and its stores.
MAX_STATE_BYTES = 16 * 1024 * 1024  # a larger stored or saved state is a StateError
MAX_CONVERSATION_ID_CHARS = 255  # also the length of the Django model's primary key
DEFAULT_STORE_LOCK_TIMEOUT = 10.0  # FileConversationStore: wait for another saver this long
