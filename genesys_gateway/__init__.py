"""genesys_gateway: a synchronous tool-calling SDK for the Genesys Cloud AI Builder LLM
Gateway and any OpenAI-compatible chat-completions endpoint."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .lazy_exports import lazy_exports

if TYPE_CHECKING:  # the checkers see plain imports; at run time each name loads on first use
    from .client import GatewayClient
    from .conversation import Conversation
    from .events import (
        Event, ModelCallFinished, RunFinished, TextDelta, ToolCallFinished,
        ToolCallStarted,
    )
    from .errors import (
        APIError, AuthenticationError, BadRequestError, ConfigurationError, ConflictError,
        ConversationStoreError, GatewayError, NotFoundError, PermissionDeniedError,
        RateLimitError, ResponseFormatError, ServerError, StateError, TokenStoreError,
        ToolArgumentsError, ToolDefinitionError, ToolError, TransportError,
    )
    from .http.auth import Auth, BearerToken, ClientCredentials
    from .http.file_store import FileTokenStore
    from .http.rate_limit import RateLimiter, TokenBucket
    from .http.redis_rate_limit import RedisRateLimiter
    from .http.redis_store import RedisTokenStore
    from .http.requests_transport import RequestsTransport
    from .http.retry import ExponentialBackoff, NoRetry, RetryPolicy
    from .http.retry_budget import RetryBudget
    from .http.tokens import LockTiming, MemoryTokenStore, Token, TokenStore
    from .http.transport import HTTPRequest, HTTPResponse, Timeout, Transport
    from .http.urllib3_transport import Urllib3Transport
    from .limits import Limits
    from .result import PendingCall, RunResult, StopReason
    from .stream import RunStream
    from .web import sse
    from .models import ChatResponse, Choice, FunctionCall, Message, ToolCall, Usage
    from .regions import REGIONS, Region, resolve_region
    from .state import (
        ConversationStore, FileConversationStore, MemoryConversationStore,
        RedisConversationStore, StoredState,
    )
    from .tools.calls import ToolRun, ToolRunStatus
    from .tools.context import ToolContext
    from .tools.executor import ToolExecutor
    from .tools.registry import Tool, ToolRegistry

__version__ = "0.1.0"

__all__ = [
    "Auth", "BearerToken", "ClientCredentials",
    "GatewayClient", "Conversation", "RunResult", "StopReason", "RunStream", "sse", "Limits",
    "PendingCall",
    "Event", "TextDelta", "ToolCallStarted", "ToolCallFinished", "ModelCallFinished", "RunFinished",
    "APIError", "AuthenticationError", "BadRequestError", "ConfigurationError", "GatewayError",
    "NotFoundError", "PermissionDeniedError", "RateLimitError", "ResponseFormatError", "ServerError",
    "TokenStoreError", "ToolArgumentsError", "ToolDefinitionError", "ToolError", "TransportError",
    "ToolExecutor", "ToolRun", "ToolRunStatus",
    "StateError", "ConflictError", "ConversationStoreError",
    "ConversationStore", "StoredState", "MemoryConversationStore", "FileConversationStore",
    "RedisConversationStore",
    "FileTokenStore", "RedisTokenStore", "MemoryTokenStore", "Token", "TokenStore", "LockTiming",
    "ChatResponse", "Choice", "FunctionCall", "Message", "ToolCall", "Usage",
    "REGIONS", "Region", "resolve_region",
    "ExponentialBackoff", "NoRetry", "RetryPolicy",
    "RateLimiter", "TokenBucket", "RedisRateLimiter", "RetryBudget",
    "Tool", "ToolContext", "ToolRegistry",
    "HTTPRequest", "HTTPResponse", "RequestsTransport", "Timeout", "Transport", "Urllib3Transport",
    "__version__",
]

#: module -> the public names it defines. PEP 562: ``gg.X`` imports X's module the first
#: time, so a plain client never loads conversation stores, streaming, structured output,
#: Redis or requests support.
_MODULES = {
    ".client": "GatewayClient",
    ".conversation": "Conversation",
    ".events": "Event ModelCallFinished RunFinished TextDelta ToolCallFinished ToolCallStarted",
    ".errors": ("APIError AuthenticationError BadRequestError ConfigurationError ConflictError "
                "ConversationStoreError GatewayError NotFoundError PermissionDeniedError "
                "RateLimitError ResponseFormatError ServerError StateError TokenStoreError "
                "ToolArgumentsError ToolDefinitionError ToolError TransportError"),
    ".http.auth": "Auth BearerToken ClientCredentials",
    ".http.file_store": "FileTokenStore",
    ".http.rate_limit": "RateLimiter TokenBucket",
    ".http.redis_rate_limit": "RedisRateLimiter",
    ".http.redis_store": "RedisTokenStore",
    ".http.requests_transport": "RequestsTransport",
    ".http.retry": "ExponentialBackoff NoRetry RetryPolicy",
    ".http.retry_budget": "RetryBudget",
    ".http.tokens": "LockTiming MemoryTokenStore Token TokenStore",
    ".http.transport": "HTTPRequest HTTPResponse Timeout Transport",
    ".http.urllib3_transport": "Urllib3Transport",
    ".limits": "Limits",
    ".result": "PendingCall RunResult StopReason",
    ".stream": "RunStream",
    ".web": "sse",
    ".models": "ChatResponse Choice FunctionCall Message ToolCall Usage",
    ".regions": "REGIONS Region resolve_region",
    ".state": ("ConversationStore FileConversationStore MemoryConversationStore "
               "RedisConversationStore StoredState"),
    ".tools.calls": "ToolRun ToolRunStatus",
    ".tools.context": "ToolContext",
    ".tools.executor": "ToolExecutor",
    ".tools.registry": "Tool ToolRegistry",
}

__getattr__, __dir__ = lazy_exports(__name__, globals(), _MODULES, __all__)
