import pytest

import genesys_gateway as gg
from genesys_gateway.testing import GatewayEmulator

try:
    from tests.fixtures_redis import *  # noqa: F401,F403  (real redis-server fixtures)
    from tests.fixtures_postgres import *  # noqa: F401,F403  (real PostgreSQL server)
    from tests.conversation_store_cases import django_postgres, django_sqlite  # noqa: F401
except ImportError:  # pragma: no cover
    from fixtures_redis import *  # noqa: F401,F403


class Sleeps(list):
    """An injected sleep: records what would have been slept."""

    def __call__(self, seconds):
        self.append(seconds)


@pytest.fixture
def sleeps():
    return Sleeps()


@pytest.fixture
def emulator():
    with GatewayEmulator() as em:
        yield em


@pytest.fixture(params=["urllib3", "requests"])
def transport_factory(request):
    return {"urllib3": gg.Urllib3Transport, "requests": gg.RequestsTransport}[request.param]


@pytest.fixture
def make_client(emulator, sleeps):
    clients = []

    def make(**kwargs):
        em = kwargs.pop("em", emulator)
        kwargs.setdefault("base_url", em.url)
        kwargs.setdefault("auth", gg.ClientCredentials("client-id", "s3cr3t-value", token_url=em.token_url))
        kwargs.setdefault("retry", gg.ExponentialBackoff(sleep=sleeps, random=lambda: 1.0))
        client = gg.GatewayClient(**kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
