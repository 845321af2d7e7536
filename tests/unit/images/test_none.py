"""harness/images/none.py: the builder of boards that need no image."""

from __future__ import annotations

from harness.images import BuildContext, build_image
from harness.images import none as none_builder


def test_none_builder_gives_an_empty_image(tmp_path):
    image = none_builder.build(None, {})  # type: ignore[arg-type]
    assert (image.digest, image.files, image.cached) == ("none", {}, False)
    assert build_image("none", BuildContext.__new__(BuildContext), {}).digest == "none"  # picked by name
