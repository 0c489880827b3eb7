"""tests/api's store-semantics tests, run over HTTPS against ``llmos server --store kube``.

The same test functions; ``admin`` (tests/kube/conftest.py) is the kube-backed
server's. Left out: the synchronous owner cascade (Kubernetes' garbage collector
is asynchronous; tests/store covers it on both stores) and the tests that start
servers of their own with SQLite-only settings.
"""

from __future__ import annotations

from api.test_store_semantics import (  # noqa: F401  (collected here with this folder's admin)
    test_deleting_a_namespace_deletes_its_content,
    test_finalizers_delay_deletion,
    test_generation_moves_only_with_spec,
    test_label_selectors_and_paging,
    test_merge_patch_updates_fields,
    test_owner_reference_to_a_missing_owner_is_refused,
    test_reserved_namespaces_cannot_be_deleted,
    test_stale_resource_version_conflicts,
    test_watch_label_selector_sees_objects_leave,
    test_watch_resumes_after_a_dropped_connection,
    test_watch_streams_changes_in_order,
    test_watch_without_version_lists_first,
)
