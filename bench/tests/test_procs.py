import os
import shutil
import subprocess
import tempfile
import unittest

import _path  # noqa: F401
from benchlib import procs

TOOL = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools", "rusage-exec.c")


@unittest.skipUnless(shutil.which("cc"), "needs a C compiler")
class PeakRssTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.tool = os.path.join(self.dir, "rusage-exec")
        subprocess.run(["cc", "-O2", "-o", self.tool, TOOL], check=True)
        # The harness is a large process: 200 MB resident.
        self.ballast = bytearray(200 * 1024 * 1024)
        for i in range(0, len(self.ballast), 4096):
            self.ballast[i] = 1

    def tearDown(self):
        procs.RUSAGE_EXEC = None
        del self.ballast
        shutil.rmtree(self.dir)

    def run_small(self) -> procs.ProcResult:
        p = procs.Proc(["true"], stdout_path=os.path.join(self.dir, "o"), stderr_path=os.path.join(self.dir, "e"))
        return p.wait()

    def test_a_small_client_started_from_a_large_harness_shows_its_own_peak_rss(self):
        procs.RUSAGE_EXEC = self.tool
        r = self.run_small()
        self.assertEqual(r.exit, 0)
        self.assertLess(r.maxrss_kb, 50 * 1024)

    def test_without_rusage_exec_wait4_counts_the_harness(self):
        # What the measurement above corrects (if this fails, Python no longer forks a copy of
        # itself and the correction is moot, not wrong).
        r = self.run_small()
        self.assertGreater(r.maxrss_kb, 150 * 1024)


if __name__ == "__main__":
    unittest.main()
