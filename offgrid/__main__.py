"""`python -m offgrid`."""

from offgrid.cli import main

if __name__ == "__main__":
    main()
