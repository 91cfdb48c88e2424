import unittest

import _path  # noqa: F401
from benchlib.stats import quantile, summarize


class StatsTest(unittest.TestCase):
    def test_median_odd_and_even(self):
        self.assertEqual(summarize([3, 1, 2])["median"], 2)
        self.assertEqual(summarize([4, 1, 3, 2])["median"], 2.5)

    def test_spread(self):
        s = summarize([5, 1, 4, 2, 3])
        self.assertEqual((s["n"], s["min"], s["max"]), (5, 1, 5))
        self.assertEqual((s["q1"], s["q3"]), (2, 4))

    def test_missing_values_are_ignored(self):
        s = summarize([None, 2.0, float("nan"), 4.0])
        self.assertEqual((s["n"], s["median"]), (2, 3.0))

    def test_empty(self):
        self.assertEqual(summarize([])["n"], 0)
        self.assertIsNone(summarize([None])["median"])

    def test_quantile_interpolates(self):
        self.assertAlmostEqual(quantile([0.0, 10.0], 0.25), 2.5)
        with self.assertRaises(ValueError):
            quantile([], 0.5)


if __name__ == "__main__":
    unittest.main()
