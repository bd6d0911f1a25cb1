"""Where the model lives: a private, KMS-encrypted, versioned bucket holding ``model.tar.gz``
built from a local directory at preview time, or a model another pipeline already put in S3."""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws

from components.context import name_tag

MODEL_FILENAME = "xgboost-model"
DATA_CAPTURE_PREFIX = "data-capture"
_S3_URI = re.compile(r"^s3://(?P<bucket>[^/]+)/(?P<key>.+)$")


def build_model_tarball(model_dir: Path, out_dir: Path) -> Path:
    """Pack ``model_dir`` into ``out_dir/<sha256>.tar.gz``, byte-for-byte the same for the same files.

    Entries are sorted, owners, modes and times fixed, and the gzip header carries no time or name,
    so an unchanged model keeps its content-hashed S3 key and a preview shows no change.
    """
    # Hidden files (a writer's ``.partial``, editor droppings) never ship: SageMaker's loaders
    # read every file in the model directory.
    files = sorted(
        p
        for p in model_dir.rglob("*")
        if p.is_file() and not p.relative_to(model_dir).as_posix().startswith(".")
    )
    if not any(p.relative_to(model_dir).as_posix() == MODEL_FILENAME for p in files):
        raise FileNotFoundError(f"{model_dir} has no {MODEL_FILENAME} at its top level")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in files:
            data = path.read_bytes()
            info = tarfile.TarInfo(path.relative_to(model_dir).as_posix())
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    compressed = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, mtime=0, compresslevel=9) as gz:
        gz.write(raw.getvalue())
    payload = compressed.getvalue()
    digest = hashlib.sha256(payload).hexdigest()
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{digest}.tar.gz"
    if not target.exists():
        partial = target.with_suffix(".partial")
        partial.write_bytes(payload)
        partial.replace(target)
    return target


@dataclass(frozen=True, kw_only=True)
class ModelArtifactArgs:
    kms_key_arn: pulumi.Input[str]
    """Key that encrypts the bucket's objects."""
    partition: pulumi.Input[str]
    """AWS partition, for the ARN of a model brought from another bucket."""
    model_dir: Path | None = None
    """Local directory with ``xgboost-model``; packed and uploaded. Exactly one of this and ``model_uri``."""
    model_uri: str | None = None
    """``s3://bucket/key/model.tar.gz`` of an existing model (bring your own)."""
    build_dir: Path = Path("build/model-artifacts")
    """Where the tarball is written before upload."""

    def __post_init__(self) -> None:
        if (self.model_dir is None) == (self.model_uri is None):
            raise ValueError("give exactly one of model_dir and model_uri")
        if self.model_uri is not None and not _S3_URI.match(self.model_uri):
            raise ValueError(f"{self.model_uri!r} is not an s3://bucket/key URI")


class ModelArtifact(pulumi.ComponentResource):
    """The artifact bucket (also the data-capture destination) and the model in it."""

    bucket_name: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]
    model_data_url: pulumi.Output[str]
    """``s3://`` URL of model.tar.gz that SageMaker downloads."""
    model_object_arn: pulumi.Output[str]
    """ARN of that one object, for the execution role's ``s3:GetObject``."""
    data_capture_uri: pulumi.Output[str]
    data_capture_arn: pulumi.Output[str]
    """ARN pattern of the data-capture objects (``<bucket>/data-capture/*``)."""

    def __init__(
        self, name: str, args: ModelArtifactArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("xgboost-endpoint:storage:ModelArtifact", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        bucket = aws.s3.Bucket(f"{name}-bucket", tags=name_tag(f"{name}-bucket"), opts=child)
        ownership = aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=child,
        )
        public_access = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        versioning = aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
            opts=child,
        )
        encryption = aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="aws:kms", kms_master_key_id=args.kms_key_arn
                    ),
                    # One data key per bucket instead of one KMS call per object.
                    bucket_key_enabled=True,
                )
            ],
            opts=child,
        )
        aws.s3.BucketPolicy(
            f"{name}-tls-only",
            bucket=bucket.id,
            policy=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "DenyPlainHttp",
                            "Effect": "Deny",
                            "Principal": "*",
                            "Action": "s3:*",
                            "Resource": [bucket.arn, pulumi.Output.concat(bucket.arn, "/*")],
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                        }
                    ],
                }
            ),
            # S3 refuses a policy while the public access block is being written.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_access]),
        )

        if args.model_dir is not None:
            tarball = build_model_tarball(args.model_dir, args.build_dir)
            key = f"models/{tarball.name.removesuffix('.tar.gz')}/model.tar.gz"
            model = aws.s3.BucketObjectv2(
                f"{name}-model",
                bucket=bucket.id,
                key=key,
                source=pulumi.FileAsset(str(tarball)),
                content_type="application/gzip",
                server_side_encryption="aws:kms",
                kms_key_id=args.kms_key_arn,
                tags=name_tag(f"{name}-model"),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[encryption, versioning, ownership]),
            )
            self.model_data_url = pulumi.Output.concat("s3://", model.bucket, "/", model.key)
            self.model_object_arn = pulumi.Output.concat(bucket.arn, "/", model.key)
        else:
            assert args.model_uri is not None  # __post_init__ guarantees one of the two
            match = _S3_URI.match(args.model_uri)
            assert match is not None
            self.model_data_url = pulumi.Output.from_input(args.model_uri)
            self.model_object_arn = pulumi.Output.concat(
                "arn:", args.partition, ":s3:::", match.group("bucket"), "/", match.group("key")
            )

        self.bucket_name = bucket.bucket
        self.bucket_arn = bucket.arn
        self.data_capture_uri = pulumi.Output.concat("s3://", bucket.bucket, f"/{DATA_CAPTURE_PREFIX}")
        self.data_capture_arn = pulumi.Output.concat(bucket.arn, f"/{DATA_CAPTURE_PREFIX}/*")
        self.register_outputs(
            {
                "bucket_name": self.bucket_name,
                "bucket_arn": self.bucket_arn,
                "model_data_url": self.model_data_url,
                "model_object_arn": self.model_object_arn,
                "data_capture_uri": self.data_capture_uri,
                "data_capture_arn": self.data_capture_arn,
            }
        )
