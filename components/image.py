"""The serving image: an ECR repository (scanned, immutable tags, lifecycle, KMS) and the image
built from ``container/`` with docker-build, tagged by the content hash of that directory."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_docker_build as docker_build

from components.context import name_tag

_IGNORED_PARTS = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache"})


def content_hash(directory: Path) -> str:
    """SHA-256 over every file's relative path and bytes, in sorted order (caches excluded).

    The same sources give the same tag on every machine, so an unchanged container is neither
    rebuilt nor re-pushed, and a changed one gets a new immutable tag.
    """
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        relative = path.relative_to(directory)
        if _IGNORED_PARTS.intersection(relative.parts) or path.suffix == ".pyc":
            continue
        digest.update(relative.as_posix().encode())
        digest.update(b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


@dataclass(frozen=True, kw_only=True)
class ServingImageArgs:
    project_dir: Path
    """Directory of Pulumi.yaml: the CLI runs there, so the build context is given relative to it
    (an absolute path would differ between machines and show as a change)."""
    context_dir: Path
    """Build context with the Dockerfile (``container/``), inside ``project_dir``."""
    kms_key_arn: pulumi.Input[str]
    """Key that encrypts the repository."""
    keep_images: int = 20
    """Images kept in the repository; older ones expire (rollbacks need a few, not hundreds)."""
    untagged_expiry_days: int = 7
    """Days an untagged image (a layer left by a failed push) is kept."""

    def __post_init__(self) -> None:
        if not self.context_dir.is_relative_to(self.project_dir):
            raise ValueError(f"the build context {self.context_dir} must be inside {self.project_dir}")
        if self.keep_images < 1 or self.untagged_expiry_days < 1:
            raise ValueError("keep at least one image and untagged images at least a day")

    @property
    def context_location(self) -> str:
        return self.context_dir.relative_to(self.project_dir).as_posix()

    @property
    def tag(self) -> str:
        return content_hash(self.context_dir)[:16]


class ServingImage(pulumi.ComponentResource):
    """ECR repository and the pushed image."""

    repository_url: pulumi.Output[str]
    repository_arn: pulumi.Output[str]
    image_uri: pulumi.Output[str]
    """Digest-pinned reference of the pushed image (``repo@sha256:...``), what the model runs."""
    tag: pulumi.Output[str]

    def __init__(self, name: str, args: ServingImageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("xgboost-endpoint:image:ServingImage", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tag = args.tag
        repository = aws.ecr.Repository(
            f"{name}-repo",
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=True),
            encryption_configurations=[
                aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="KMS", kms_key=args.kms_key_arn)
            ],
            tags=name_tag(f"{name}-repo"),
            opts=child,
        )
        aws.ecr.LifecyclePolicy(
            f"{name}-lifecycle",
            repository=repository.name,
            policy=json.dumps(
                {
                    "rules": [
                        {
                            "rulePriority": 1,
                            "description": f"expire untagged images after {args.untagged_expiry_days} days",
                            "selection": {
                                "tagStatus": "untagged",
                                "countType": "sinceImagePushed",
                                "countUnit": "days",
                                "countNumber": args.untagged_expiry_days,
                            },
                            "action": {"type": "expire"},
                        },
                        {
                            "rulePriority": 2,
                            "description": f"keep the {args.keep_images} most recent images",
                            "selection": {
                                "tagStatus": "any",
                                "countType": "imageCountMoreThan",
                                "countNumber": args.keep_images,
                            },
                            "action": {"type": "expire"},
                        },
                    ]
                }
            ),
            opts=child,
        )
        auth = aws.ecr.get_authorization_token_output(registry_id=repository.registry_id)
        image = docker_build.Image(
            f"{name}-image",
            context=docker_build.BuildContextArgs(location=args.context_location),
            dockerfile=docker_build.DockerfileArgs(location=f"{args.context_location}/Dockerfile"),
            # The tag (a content hash) is known at preview time; building needs a Docker engine,
            # which previews and CrossGuard runs in CI do not have.
            build_on_preview=False,
            # SageMaker hosting runs x86_64 CPU instances for these types.
            platforms=[docker_build.Platform.LINUX_AMD64],
            tags=[pulumi.Output.concat(repository.repository_url, ":", tag)],
            push=True,
            registries=[
                docker_build.RegistryArgs(
                    address=repository.repository_url,
                    username=auth.user_name,
                    password=pulumi.Output.secret(auth.password),
                )
            ],
            opts=child,
        )
        self.repository_url = repository.repository_url
        self.repository_arn = repository.arn
        # SageMaker documents `repository:tag` or `repository@digest`; the build's `ref` is
        # `repository:tag@digest`, outside both. The digest pins the exact image that was pushed.
        self.image_uri = pulumi.Output.concat(repository.repository_url, "@", image.digest)
        self.tag = pulumi.Output.from_input(tag)
        self.register_outputs(
            {
                "repository_url": self.repository_url,
                "repository_arn": self.repository_arn,
                "image_uri": self.image_uri,
                "tag": self.tag,
            }
        )
