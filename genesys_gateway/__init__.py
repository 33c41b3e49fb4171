"""genesys_gateway: a synchronous tool-calling SDK for the Genesys Cloud AI Builder LLM
Gateway and any OpenAI-compatible chat-completions endpoint."""

from .http.auth import Auth, BearerToken, ClientCredentials
from .client import GatewayClient
from .conversation import Conversation, RunResult
from .errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    GatewayError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseFormatError,
    ServerError,
    TokenStoreError,
    ToolArgumentsError,
    ToolDefinitionError,
    TransportError,
)
from .tools.executor import ToolExecutor, ToolRun
from .http.file_store import FileTokenStore
from .models import ChatResponse, Choice, FunctionCall, Message, ToolCall, Usage
from .http.redis_store import RedisTokenStore
from .regions import REGIONS, Region, resolve_region
from .http.retry import ExponentialBackoff, NoRetry, RetryPolicy
from .http.tokens import MemoryTokenStore, Token, TokenStore
from .tools.registry import Tool, ToolContext, ToolRegistry
from .http.requests_transport import RequestsTransport
from .http.transport import HTTPRequest, HTTPResponse, Timeout, Transport
from .http.urllib3_transport import Urllib3Transport

__version__ = "0.1.0"

__all__ = [
    "Auth", "BearerToken", "ClientCredentials",
    "GatewayClient", "Conversation", "RunResult",
    "APIError", "AuthenticationError", "BadRequestError", "ConfigurationError", "GatewayError",
    "NotFoundError", "PermissionDeniedError", "RateLimitError", "ResponseFormatError", "ServerError",
    "TokenStoreError", "ToolArgumentsError", "ToolDefinitionError", "TransportError",
    "ToolExecutor", "ToolRun",
    "FileTokenStore", "RedisTokenStore", "MemoryTokenStore", "Token", "TokenStore",
    "ChatResponse", "Choice", "FunctionCall", "Message", "ToolCall", "Usage",
    "REGIONS", "Region", "resolve_region",
    "ExponentialBackoff", "NoRetry", "RetryPolicy",
    "Tool", "ToolContext", "ToolRegistry",
    "HTTPRequest", "HTTPResponse", "RequestsTransport", "Timeout", "Transport", "Urllib3Transport",
    "__version__",
]
