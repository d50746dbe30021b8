"""Side-by-side benchmarks: each compares OneMap with a peer in one run and prints ratios."""

import sys


def main() -> int:
    print("no benchmarks are registered yet")
    return 0


if __name__ == "__main__":
    sys.exit(main())
