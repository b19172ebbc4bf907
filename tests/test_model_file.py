"""What a model file keeps of its run's steps: how far a run stopped mid-epoch got, and its curve."""
import json

from cae.model_file import MAX_STEP_LOSSES, StepLosses, stopped_mid_epoch


def test_step_losses_are_kept_evenly_thinned_with_the_last():
    steps = StepLosses()
    for step in range(20, 5001 * 20, 20):  # 5,000 reports, 938 steps an epoch
        steps.add(step, 938, 0.1 + 1.0 / step)
    steps.steps_done = 100_005  # (the last report a few steps before the stop)
    meta = steps.metadata()
    kept = meta["step_losses"]
    assert len(kept) <= MAX_STEP_LOSSES + 1 and len(kept) > MAX_STEP_LOSSES // 2
    assert kept[0] == [round(20 / 938, 4), float(f"{0.1 + 1 / 20:.5g}")]
    assert kept[-1][0] == round(100_000 / 938, 4)  # the last report always
    assert all(a[0] < b[0] for a, b in zip(kept, kept[1:]))
    assert (meta["steps_done"], meta["steps_per_epoch"]) == (100_005, 938)
    assert len(json.dumps(meta)) < 60_000  # a small header
    few = StepLosses()
    few.add(20, 938, 0.5)
    assert few.metadata()["step_losses"] == [[0.0213, 0.5]]
    assert StepLosses().metadata()["step_losses"] == []


def test_stopped_mid_epoch_reads_how_far_the_run_got():
    meta = {"stopped_early": True, "epochs_done": 3, "steps_done": 3 * 938 + 160,
            "steps_per_epoch": 938}
    assert stopped_mid_epoch(meta) == (4, 160, 938)
    assert stopped_mid_epoch({**meta, "epochs_done": 0, "steps_done": 160}) == (1, 160, 938)
    assert stopped_mid_epoch({**meta, "steps_done": 3 * 938}) is None  # at an epoch's end
    assert stopped_mid_epoch({**meta, "stopped_early": False}) is None
    assert stopped_mid_epoch({"stopped_early": True, "epochs_done": 1}) is None  # an older file
    assert stopped_mid_epoch({**meta, "steps_per_epoch": "many"}) is None  # damaged
    assert stopped_mid_epoch({**meta, "steps_per_epoch": 0}) is None


def test_step_points_reads_what_it_can():
    import numpy as np
    from cae.model_file import step_points
    meta = {"step_losses": [[0.5, 0.04], [0.25, 0.05], ["x", 1], [0.75], [1.0, float("nan")],
                            [1.0, -1.0], None, [1.0, 0.03]]}
    np.testing.assert_array_equal(step_points(meta), [[0.25, 0.05], [0.5, 0.04], [1.0, 0.03]])
    assert step_points({}).shape == (0, 2) and step_points({"step_losses": "junk"}).shape == (0, 2)


def test_a_model_file_records_how_its_data_is_framed():
    """A drawing for a model of an IDX folder was framed by whatever dataset was loaded at the
    time (letters in 24-px boxes read 28 px under Fashion-MNIST): the file records its own."""
    import dataclasses

    import numpy as np

    from cae.data import Dataset
    from cae.model import CAE
    from cae.model_file import model_file_contents
    from cae.preprocess import FRAMINGS, Framing, framing_from
    from tests.helpers import framed_scribbles

    images = framed_scribbles(Framing(24, False), 40)
    labels = np.arange(40) % 10
    for name, expected in (("letters", Framing(24, False)), ("mnist", FRAMINGS["mnist"])):
        ds = Dataset(name, images, labels, images[:10], labels[:10])
        meta, _ = model_file_contents(CAE(), ds, None, history=[], epochs_done=0,
                                      stopped_early=False, wall_time_s=0, device="cpu",
                                      precision="fp32", threads=1, encode=False)
        assert meta["framing"] == dataclasses.asdict(expected)
        assert framing_from(json.loads(json.dumps(meta["framing"])), 28) == expected
    for bad in (None, [24], {"box": 24}, {"box": 30, "centre_of_mass": True, "field": 28},
                {"box": 24.0, "centre_of_mass": True, "field": 28},
                {"box": 24, "centre_of_mass": 1, "field": 28},
                {"box": 20, "centre_of_mass": True, "field": 32}):
        assert framing_from(bad, 28) is None, bad
