"""The benchmarks' held-out half: what every reported figure is measured on."""

import pandas as pd

from benchmarks.common import held_out
from tests.conftest import FASHION


def test_held_out_half_keeps_duplicate_photos_together_and_is_about_half():
    styles = pd.read_csv(FASHION / "styles.csv", dtype=str, usecols=["id", "image_md5"], nrows=4000)
    mask = held_out(styles["image_md5"])
    assert 0.45 < mask.mean() < 0.55
    assert (mask.groupby(styles["image_md5"]).nunique() == 1).all()
    shuffled = styles.sample(frac=1, random_state=1)
    assert held_out(shuffled["image_md5"]).equals(mask.loc[shuffled.index])
