"""tests/auth's login, token and RBAC tests, run against ``llmos server --store kube``.

The same test functions; ``server`` and ``admin`` (tests/kube/conftest.py) are the
kube-backed server's. Left out: tests that need a fresh server of their own, and
``test_deleting_a_user_removes_their_tokens``, which expects the user's tokens
gone the moment the user is (SQLite cascades in the same transaction; on
Kubernetes the garbage collector removes them shortly after, and the tokens stop
working at once either way).
"""

from __future__ import annotations

from auth.test_auth_flow import (  # noqa: F401  (collected here with this folder's server)
    test_api_keys_are_shown_once_and_can_be_revoked,
    test_bad_credentials_are_401,
    test_default_session_ttl_is_720_minutes,
    test_disabled_user_cannot_log_in_or_use_tokens,
    test_logout_revokes_the_token,
    test_password_change_ends_other_sessions,
    test_session_ttl_expires,
    test_tokens_cannot_be_minted_through_the_resource_api,
)
from auth.test_rbac_matrix import (  # noqa: F401
    test_binding_takes_effect_at_once_and_revocation_too,
    test_list_across_namespaces_shows_only_what_is_allowed,
    test_matrix,
    test_standard_users_cannot_manage_users_or_escalate,
    test_user_creates_a_namespace_and_owns_it,
    test_users_see_only_their_namespaces,
    world,
)
