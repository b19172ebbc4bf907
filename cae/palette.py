"""The class colours, shared by the window and every export (no imaging library needed)."""

# The class colours of the app and of every export (app/latent_map.py imports them from here):
# ten that read on a white background and, outlined, on the dark decoded-image mosaic; none is
# black, white or pale.  Class c gets PALETTE[c % 10].
PALETTE = (
    "#1F77B4",
    "#FF7F0E",
    "#2CA02C",
    "#D62728",
    "#9467BD",
    "#8C564B",
    "#E377C2",
    "#17BECF",
    "#BCBD22",
    "#7F7F7F",
)

# The dots' opacity (of 255): slightly see-through, so a class drawn later never wholly hides
# another; the window's dots and the exported pictures' alike.
POINT_ALPHA = 200
