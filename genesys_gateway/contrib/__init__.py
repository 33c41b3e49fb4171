"""Framework integrations: :mod:`genesys_gateway.contrib.flask` and
:mod:`genesys_gateway.contrib.django`."""
