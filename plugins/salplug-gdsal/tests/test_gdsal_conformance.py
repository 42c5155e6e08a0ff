"""The gdsal prior through each check of the conformance kit."""

import salplug.testing
from salplug_gdsal import GradientDescentSaliency

BATCH_ATOL = 1e-4
"""Batch agreement of gdsal maps. The classifier's convolutions pick kernels by batch size and
thread count, whose float32 sums round differently: the input gradient of one image differs by
about 1e-4 relative between a batch and a single run (measured with 1 and 2 threads), and the
superpixel refinement's normalisation carries that to 2.2e-5 of the [0, 1] map. 1e-4 is a
fortieth of one 8-bit grey level, the precision maps are written and scored at."""


@salplug.testing.parametrize_with_checks([GradientDescentSaliency], atol=BATCH_ATOL)
def test_conformance(component, check):
    check(component)
