"""The map's toolbar: which points, how they are coloured, the decoded-image mosaic, the
training timeline and whether the view follows the codes.  Widgets only; see app/layers.py."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QComboBox, QLabel, QSizePolicy, QSlider, QToolBar

from .spin_box import SpinBox


MAP_SET_TIP = "Which digits are on the map"

SWITCH_STYLE = """
QToolButton[switch="true"] { border: 1px solid palette(mid); border-radius: 3px;
                             padding: 2px 6px; margin: 1px 2px; }
QToolButton[switch="true"]:checked { background: palette(highlight);
                                     color: palette(highlighted-text);
                                     border-color: palette(highlight); }
"""


class MapToolbar(QToolBar):
    def __init__(self, parent=None) -> None:
        super().__init__("Map", parent)
        self.setObjectName("mapToolbar")
        self.fit_action = QAction("Fit view", self)
        self.fit_action.setToolTip("Frame all the points (Ctrl+F)")
        self.addAction(self.fit_action)
        self.follow_action = QAction("Follow", self)
        self.follow_action.setCheckable(True)
        self.follow_action.setChecked(True)
        self.follow_action.setToolTip("Keep the points in view as they move (while training); "
                                      "panning or zooming by hand turns it off")
        self.addAction(self.follow_action)
        self.map_set = QComboBox()
        self.map_set.addItem("Test digits", False)
        self.map_set.addItem("All digits", True)
        self.map_set.setToolTip(MAP_SET_TIP)
        # As wide as its longest text ("Live: 10,000 test images" while training) from the start,
        # so the rest of the toolbar does not shift when a run starts or ends.
        self.map_set.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.map_set.setMinimumContentsLength(len("Live: 10,000 test images"))
        self.addWidget(self.map_set)
        self.colour_by = QComboBox()
        self.colour_by.addItem("Colour: class", "class")
        self.colour_by.addItem("Colour: reconstruction error", "error")
        self.colour_by.addItem("Colour: 5-NN vote wrong", "knn")
        self.colour_by.setToolTip("Colour the points by class, by how well each image is "
                                  "reconstructed, or by whether its 5 nearest training codes "
                                  "vote for another class (not while a run trains)")
        self.addWidget(self.colour_by)
        self.grey_action = QAction("Grey hidden", self)
        self.grey_action.setCheckable(True)
        self.grey_action.setToolTip("Classes switched off in the legend stay on the map in grey")
        self.addAction(self.grey_action)
        self.mosaic_action = QAction("Decoded images", self)
        self.mosaic_action.setCheckable(True)
        self.mosaic_action.setShortcut("M")
        self.mosaic_action.setToolTip("Lay what the decoder draws everywhere under the points "
                                       "(M; P hides the points)")
        self.addAction(self.mosaic_action)
        # In the View menu, not on the bar (its width is spent): P hides every point, so the
        # mosaic's tiles show whole under the dense clusters.
        self.points_action = QAction("&Points", self)
        self.points_action.setCheckable(True)
        self.points_action.setChecked(True)
        self.points_action.setShortcut("P")
        self.points_action.setToolTip("Show the digits' points on the map (P)")
        # Also in the View menu only: one latent unit as long across as up.
        self.equal_action = QAction("&Equal axes", self)
        self.equal_action.setCheckable(True)
        self.equal_action.setShortcut("E")
        self.equal_action.setToolTip("One unit of z1 as long as one of z2, so distances on the "
                                     "map mean the same in every direction (E)")
        self.mosaic_size = SpinBox()
        self.mosaic_size.setRange(2, 40)
        self.mosaic_size.setValue(16)
        self.mosaic_size.setPrefix("mosaic ")
        self.mosaic_size.setToolTip("Tiles across the map, 2 to 40; as many rows as keep them "
                                    "square")
        self.mosaic_size.setSuffix(" across")
        self.addWidget(self.mosaic_size)
        # Checkable tool buttons are flat when off, so "Decoded images" read as a label: a frame
        # makes each switch look like one, filled while on.
        for action in (self.follow_action, self.grey_action, self.mosaic_action):
            self.widgetForAction(action).setProperty("switch", True)
        self.setStyleSheet(SWITCH_STYLE)
        self.timeline_slider = QSlider(Qt.Orientation.Horizontal)
        self.timeline_slider.setMinimumWidth(120)
        self.timeline_slider.setToolTip("Scrub through the epochs of the training run")
        self.timeline_label = QLabel("")
        # A row of its own under this one (the window adds it): at the end of this row, a
        # window 1024 px wide hid the slider in the toolbar's "»" menu.
        self.timeline_bar = QToolBar("Timeline", parent)
        self.timeline_bar.setObjectName("timelineToolbar")
        self.timeline_bar.setVisible(False)  # until a model with a timeline
        self.timeline_actions = [self.timeline_bar.addWidget(QLabel(" Epoch ")),
                                 self.timeline_bar.addWidget(self.timeline_slider),
                                 self.timeline_bar.addWidget(self.timeline_label)]
        self.timeline_slider.setSizePolicy(QSizePolicy.Policy.Expanding,
                                           QSizePolicy.Policy.Fixed)
        self.timeline_slider.setMaximumWidth(480)
