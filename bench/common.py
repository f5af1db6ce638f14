# Helpers the benchmarks share (bench/*.py import it from their own directory): the Postern
# binaries to measure, the release build unless a directory is given.
import os, subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def release_bin(bin_arg):
    """`--bin DIR` as given, else `swift build -c release` and its binary directory."""
    if bin_arg:
        return bin_arg
    subprocess.run(["swift", "build", "-c", "release"], cwd=ROOT, check=True)
    return subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout.strip()
