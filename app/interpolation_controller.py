"""Interpolation: end points A and B (the decoded point, the drawn digit or a hovered digit),
the straight path between them on the map and the filmstrip of its decodes."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, Slot

from .interpolation_panel import InterpolationPanel, path_points
from .latent_map import LatentMap
from .session import Session


class InterpolationController(QObject):
    def __init__(self, session: Session, panel: InterpolationPanel, map_: LatentMap) -> None:
        super().__init__(session)
        self.session, self.panel, self.map = session, panel, map_
        panel.endpointRequested.connect(self.set_endpoint)
        panel.stepsChanged.connect(lambda _: self.update())
        panel.export_png.clicked.connect(lambda: self._report(panel.save_png()))
        panel.export_csv.clicked.connect(lambda: self._report(panel.save_csv()))
        panel.saved.connect(lambda path: session.status.emit(f"saved {path}", 8000))
        session.endpointsChanged.connect(self.update)
        session.decoderChanged.connect(self.update)

    def set_endpoint(self, end: str, source: str) -> bool:
        """Set end ``end`` from the pointer (the hovered digit, else the plane's point under the
        pointer, else the decoded point), the decoded point or the drawn digit."""
        s = self.session
        z = None
        under = self.map.pointer_z() if source == "hovered" else None
        if source == "hovered" and 0 <= self.map.hover_index < len(s.points):
            z = s.points.codes[self.map.hover_index]
        elif under is not None:
            z = np.asarray(under, np.float32)
        elif source in ("hovered", "decoded") and s.decoded_z is not None:
            z = np.asarray(s.decoded_z, np.float32)
        elif source == "drawn" and s.drawn_z is not None:
            z = s.drawn_z
        if z is None:
            what = {"drawn": "draw a digit first", "decoded": "click on the map first",
                    "hovered": "hover over a point or click on the map first"}[source]
            s.status.emit(f"cannot set {end}: {what}", 5000)
            return False
        s.set_endpoint(end, z)
        other = s.endpoints["B" if end == "A" else "A"]
        if other is not None and np.array_equal(other, s.endpoints[end]):
            s.status.emit(f"A and B are the same point: the path is one digit; set {end} "
                          "somewhere else", 6000)
        return True

    @Slot()
    def update(self) -> None:
        a, b = self.session.endpoints["A"], self.session.endpoints["B"]
        self.panel.set_endpoints(a, b)
        if a is None or b is None or self.session.models.model is None:
            self.panel.set_result(None, None)
            self.map.set_path(None)
            return
        zs = path_points(a, b, self.panel.steps.value())
        self.panel.set_result(zs, self.session.models.decode(zs))
        self.map.set_path(zs)

    def _report(self, problem: str) -> None:
        if problem:
            self.session.error.emit("Could not export", problem)
