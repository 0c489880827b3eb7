"""The install manifests without a cluster: order, wiring between objects, one YAML stream."""

from __future__ import annotations

import yaml

from llmos.install.manifests import ClusterOptions, manifests, to_yaml


def test_order_and_wiring() -> None:
    objects = manifests(ClusterOptions(namespace="sys", image="example/llmos:1", replicas=1))
    kinds = [obj["kind"] for obj in objects]
    assert kinds[0] == "Namespace" and kinds[-2:] == ["Deployment", "Service"]
    assert kinds.index("CustomResourceDefinition") < kinds.index("Deployment")
    deployment = objects[-2]
    pod = deployment["spec"]["template"]["spec"]
    account = next(o for o in objects if o["kind"] == "ServiceAccount")
    binding = next(o for o in objects if o["kind"] == "ClusterRoleBinding")
    assert pod["serviceAccountName"] == account["metadata"]["name"]
    assert binding["subjects"][0]["namespace"] == account["metadata"]["namespace"] == "sys"
    container = pod["containers"][0]
    assert container["image"] == "example/llmos:1"
    # The runtime's model-fetch init containers run the same image.
    assert {"name": "LLMOS_IMAGE", "value": "example/llmos:1"} in container["env"]
    assert "--store=kube" in container["args"]
    selector = objects[-1]["spec"]["selector"]
    assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()


def test_one_yaml_stream_round_trips() -> None:
    objects = manifests()
    assert list(yaml.safe_load_all(to_yaml(objects))) == objects
