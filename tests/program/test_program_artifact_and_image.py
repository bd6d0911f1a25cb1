"""The model artifact (deterministic tarball, private encrypted bucket) and the serving image."""

from __future__ import annotations

import json
import tarfile

import pytest
from program_helpers import one, policy_statements

from components.image import content_hash
from components.model_artifact import ModelArtifactArgs, build_model_tarball
from lib.evaluate import REPO_ROOT


def test_the_tarball_is_byte_for_byte_reproducible(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "xgboost-model").write_bytes(b"booster bytes")
    (model / ".xgboost-model.partial").write_bytes(b"half written")
    first = build_model_tarball(model, tmp_path / "a")
    (model / "xgboost-model").touch()  # a new mtime must not change anything
    second = build_model_tarball(model, tmp_path / "b")
    assert first.name == second.name
    assert first.read_bytes() == second.read_bytes()
    with tarfile.open(first) as tar:
        assert tar.getnames() == ["xgboost-model"]
        member = tar.getmember("xgboost-model")
        assert (member.mtime, member.uid, member.mode) == (0, 0, 0o644)


def test_a_changed_model_gets_a_new_key(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "xgboost-model").write_bytes(b"one")
    first = build_model_tarball(model, tmp_path / "out")
    (model / "xgboost-model").write_bytes(b"two")
    assert build_model_tarball(model, tmp_path / "out").name != first.name


def test_a_directory_without_the_model_file_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="no xgboost-model"):
        build_model_tarball(tmp_path, tmp_path / "out")


def test_dev_uploads_the_local_model_under_its_content_hash(dev):
    upload = one(dev, "aws:s3/bucketObjectv2:BucketObjectv2")
    digest = upload.inputs["key"].split("/")[1]
    assert upload.inputs["key"] == f"models/{digest}/model.tar.gz"
    assert upload.inputs["source"].path.endswith(f"{digest}.tar.gz")
    assert upload.inputs["serverSideEncryption"] == "aws:kms"
    assert upload.inputs["kmsKeyId"] == dev.named("encryption-key").outputs["arn"]
    assert dev.exports["modelDataUrl"] == f"s3://{upload.inputs['bucket']}/{upload.inputs['key']}"


def test_prod_brings_its_own_model_and_uploads_nothing(prod):
    assert not prod.of_type("aws:s3/bucketObjectv2:BucketObjectv2")
    model = one(prod, "aws:sagemaker/model:Model")
    uri = "s3://acme-ml-models-prod/xgboost-digits/2026-11-20/model.tar.gz"
    assert model.inputs["primaryContainer"]["modelDataUrl"] == uri


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_bucket_is_private_versioned_and_encrypted_with_the_stack_key(stack, request):
    graph = request.getfixturevalue(stack)
    bucket = one(graph, "aws:s3/bucket:Bucket")
    key_arn = graph.named("encryption-key").outputs["arn"]
    block = one(graph, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert all(
        block.inputs[flag] is True
        for flag in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    )
    versioning = one(graph, "aws:s3/bucketVersioning:BucketVersioning")
    assert versioning.inputs["versioningConfiguration"]["status"] == "Enabled"
    (rule,) = one(
        graph, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    ).inputs["rules"]
    default = rule["applyServerSideEncryptionByDefault"]
    assert (default["sseAlgorithm"], default["kmsMasterKeyId"]) == ("aws:kms", key_arn)
    ownership = one(graph, "aws:s3/bucketOwnershipControls:BucketOwnershipControls")
    assert ownership.inputs["rule"]["objectOwnership"] == "BucketOwnerEnforced"
    for resource in (block, versioning, ownership):
        assert bucket.urn in resource.property_dependencies["bucket"]
    (deny,) = policy_statements(one(graph, "aws:s3/bucketPolicy:BucketPolicy"))
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_model_artifact_args_want_exactly_one_source(tmp_path):
    with pytest.raises(ValueError, match="exactly one"):
        ModelArtifactArgs(kms_key_arn="k", partition="aws", model_dir=tmp_path, model_uri="s3://b/m.tar.gz")
    with pytest.raises(ValueError, match="exactly one"):
        ModelArtifactArgs(kms_key_arn="k", partition="aws")


def test_the_repository_scans_keeps_tags_immutable_and_uses_the_stack_key(prod):
    repo = one(prod, "aws:ecr/repository:Repository")
    assert repo.inputs["imageScanningConfiguration"] == {"scanOnPush": True}
    assert repo.inputs["imageTagMutability"] == "IMMUTABLE"
    (encryption,) = repo.inputs["encryptionConfigurations"]
    assert encryption == {"encryptionType": "KMS", "kmsKey": prod.named("encryption-key").outputs["arn"]}
    rules = json.loads(one(prod, "aws:ecr/lifecyclePolicy:LifecyclePolicy").inputs["policy"])["rules"]
    assert [r["selection"]["tagStatus"] for r in rules] == ["untagged", "any"]
    assert all(r["action"] == {"type": "expire"} for r in rules)


def test_the_image_is_built_from_container_and_tagged_by_its_content(prod):
    image = one(prod, "docker-build:index:Image")
    repo_url = prod.named("serving-image-repo").outputs["repositoryUrl"]
    assert image.inputs["tags"] == [f"{repo_url}:{content_hash(REPO_ROOT / 'container')[:16]}"]
    assert image.inputs["context"] == {"location": "container"}
    assert image.inputs["dockerfile"] == {"location": "container/Dockerfile"}
    assert image.inputs["push"] is True
    assert image.inputs["platforms"] == ["linux/amd64"]
    (registry,) = image.inputs["registries"]
    assert registry["address"] == repo_url
    model = one(prod, "aws:sagemaker/model:Model")
    # repository@digest: a form SageMaker documents, pinned to the image that was pushed.
    assert model.inputs["primaryContainer"]["image"] == f"{repo_url}@{image.outputs['digest']}"


def test_the_content_hash_ignores_caches_but_not_sources(tmp_path):
    (tmp_path / "serve").write_text("print('hi')\n")
    before = content_hash(tmp_path)
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "serve.cpython-311.pyc").write_bytes(b"\0")
    assert content_hash(tmp_path) == before
    (tmp_path / "serve").write_text("print('bye')\n")
    assert content_hash(tmp_path) != before
