"""`python -m bench` — run every benchmark and print the figures (also written under var/bench/)."""

from bench.ingest import main

if __name__ == "__main__":
    main()
