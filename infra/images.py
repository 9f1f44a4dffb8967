"""Container images: one pulumi_docker.Image per service this stack deploys.

Built from services/Dockerfile with the repository root as context and
pushed to <registry>/<project>/<service>:<imageTag>. Deployments use the
pushed digest (repo_digest, `repo@sha256:...`), so a new image rolls the
pods. With `theater-msa:buildImages` false nothing is built and the
Deployments use the already-pushed <registry>/<project>/<service>:<imageTag>,
pinned to its digest when `theater-msa:imageDigests` gives one
(`<repo>:<tag>@sha256:...`): then a tag pushed again rolls the pods too.

Second versions (lesson v2Cluster) are tagged per version: movie-service v2
is <registry>/<project>/movie-service:<v2ImageTag>, built from the same
Dockerfile with SERVICE_VERSION=v2; its ref is `refs["movie-service-v2"]`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import pulumi
import pulumi_docker as docker

from infra.image_plan import DOCKERFILE, REPO_ROOT, image_builds
from infra.settings import StackConfig
from services import catalog

__all__ = ["DOCKERFILE", "REPO_ROOT", "ImagesArgs", "ServiceImages", "pushed_reference"]


def pushed_reference(repo: str, tag: str, digest: str | None = None) -> str:
    """A pre-pushed image: `repo:tag`, `repo@sha256:...` when the tag is a
    digest, `repo:tag@sha256:...` when its digest is known (the runtime
    pulls by the digest; the tag stays for people reading the spec)."""
    if tag.startswith("sha256:"):
        return f"{repo}@{tag}"
    return f"{repo}:{tag}@{digest}" if digest else f"{repo}:{tag}"


@dataclass(frozen=True)
class ImagesArgs:
    services: Sequence[str]
    cfg: StackConfig
    versions: Sequence[catalog.VersionSpec] = ()


class ServiceImages(pulumi.ComponentResource):
    """`refs[service]` is the image reference a Deployment should use."""

    refs: Mapping[str, pulumi.Output[str]]

    def __init__(self, name: str, args: ImagesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("theater-msa:index:ServiceImages", name, None, opts)
        cfg = args.cfg
        refs: dict[str, pulumi.Output[str]] = {}
        # The list is shared with `theater images push` (sim/images.py): infra/image_plan.py.
        for build in image_builds(args.services, args.versions, cfg.image_tag, cfg.v2_image_tag):
            key, tag = build.key, build.tag
            repo = cfg.image_repository(build.service)
            if not cfg.build_images:
                refs[key] = pulumi.Output.from_input(pushed_reference(repo, tag, cfg.image_digests.get(key)))
                continue
            image = docker.Image(
                key,
                image_name=f"{repo}:{tag}",
                build=docker.DockerBuildArgs(
                    # Absolute paths: the program's working directory differs between
                    # `pulumi up` (infra/) and tests/render (anywhere).
                    context=str(build.context),
                    dockerfile=str(build.dockerfile),
                    platform=cfg.platform,
                    args=dict(build.build_args),
                ),
                registry=docker.RegistryArgs(
                    server=cfg.registry,
                    username=cfg.harbor_username,
                    password=cfg.harbor_password,
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
            refs[key] = image.repo_digest
        self.refs = refs
        self.register_outputs({"refs": refs})
