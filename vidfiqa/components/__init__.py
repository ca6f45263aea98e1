"""Quality components: *why* a face is poor, beside the one quality score that says *how* poor.

Every scored face gets one row of :data:`NAMES`, in this order, in ``Faces.components``
(float32, NaN where a component cannot be measured).  Units and ranges (README's table gives each
component's check, from benchmarks/components.py):

=================  ========  ==================================================================
component          unit      meaning
=================  ========  ==================================================================
``yaw``            degrees   head turned sideways; > 0 towards the image's right; 0 frontal
``pitch``          degrees   head tilted; > 0 up (chin raised), < 0 down
``roll``           degrees   head leaning; > 0 clockwise in the image
``inter_eye_px``   pixels    distance between the eye centres in the decoded frame
``sharpness``      0..1      fine detail over all detail on the aligned face; blur lowers it
``exposure``       stops     face brightness against a mid-grey face; < -1.5 too dark, > +1.5 too bright
``noise``          grey lvl  standard deviation of pixel noise on the face (0-255 scale)
``compression``    ratio     extra step at the codec's 8-px block edges; 0 none, > 0.2 blocky
``occlusion``      0..1      probability that the face is covered (mask, hand, object)
=================  ========  ==================================================================

Eyes open/closed is not among them: nothing at hand has eye-state labels to train or check it
on (see docs/components.md).
"""

from __future__ import annotations

from .meter import NAMES, UNITS, ComponentMeter, component_dict
from .reasons import ComponentLimits, reasons


__all__ = ["NAMES", "UNITS", "ComponentMeter", "ComponentLimits", "component_dict", "reasons"]
