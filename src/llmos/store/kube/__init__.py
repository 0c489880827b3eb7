"""The cluster-mode store: LLMOS objects as custom resources in a Kubernetes API server."""
