"""strata's RPM test corpus builder (see corpus/build.py and corpus/README.md)."""
