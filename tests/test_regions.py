import pytest

import genesys_gateway as gg


def test_all_regions_map_to_api_and_login_hosts():
    assert len(gg.REGIONS) == 18
    for key, domain in gg.REGIONS.items():
        region = gg.resolve_region(key)
        assert region.api_url == f"https://api.{domain}"
        assert region.token_url == f"https://login.{domain}/oauth/token"


@pytest.mark.parametrize("value", ["us-east-1", "US-EAST-1", "mypurecloud.com", "https://api.mypurecloud.com",
                                   "https://api.mypurecloud.com/", "api.mypurecloud.com"])
def test_region_spellings(value):
    assert gg.resolve_region(value).key == "us-east-1"


def test_eu_and_sovereign_regions():
    assert gg.resolve_region("eu-central-2").token_url == "https://login.euc2.pure.cloud/oauth/token"
    assert gg.resolve_region("edee1.eusc-pure.cloud").key == "eusc-de-east-1"


@pytest.mark.parametrize("value", ["mars-1", "", "   ", "http://api.mypurecloud.com", "https://example.com",
                                   "https://api.mypurecloud.com/api/v2", None, 5])
def test_bad_region_is_a_clear_error(value):
    with pytest.raises(gg.ConfigurationError) as info:
        gg.resolve_region(value)
    assert isinstance(info.value, ValueError)
    assert repr(value) in str(info.value)
