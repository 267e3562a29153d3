"""The suite's tokens and the request headers that carry them."""

from __future__ import annotations

TEST_TOKEN = "test-token-for-suite"
# The suite's token holds every scope; tests of scopes configure narrower ones.
SUITE_TOKENS = f"suite[patients:read patients:write audit:read]:{TEST_TOKEN}"
OTHER_TOKEN = "another-token-for-suite"  # principal "other", with the two_principals fixture
AUTH = {"Authorization": f"Bearer {TEST_TOKEN}"}
JSON_AUTH = {**AUTH, "Content-Type": "application/json"}
