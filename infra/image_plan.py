"""What the Pulumi program builds, declared once, without Pulumi.

infra/images.py turns each ImageBuild into a pulumi_docker.Image;
sim/images.py (`theater images push`) builds and pushes the very same list
with the docker CLI when the docker provider is not available (the rehearsal).
tests/sim/test_images.py checks that the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from services import catalog

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO_ROOT / "services" / "Dockerfile"


@dataclass(frozen=True)
class ImageBuild:
    """One image: `key` names it in ServiceImages.refs (a service, or e.g. movie-service-v2)."""

    key: str
    service: str  # the image repository's last part and the build's SERVICE_NAME
    tag: str
    build_args: Mapping[str, str] = field(default_factory=dict)  # every --build-arg, SERVICE_NAME included
    context: Path = REPO_ROOT
    dockerfile: Path = DOCKERFILE


def image_builds(services: Sequence[str], versions: Sequence[catalog.VersionSpec],
                 image_tag: str, v2_image_tag: str) -> list[ImageBuild]:
    """The images of `services` (tag image_tag) and of the second `versions` (tag v2_image_tag)."""
    builds = [ImageBuild(service, service, image_tag, {"SERVICE_NAME": service}) for service in services]
    builds += [ImageBuild(v.name, v.spec.name, v2_image_tag, {"SERVICE_NAME": v.spec.name, "SERVICE_VERSION": v.version})
               for v in versions]
    return builds
