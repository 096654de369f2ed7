"""diffcheck's version: a leaf module, so that any module can name it without importing the
package (and everything the package re-exports)."""

__version__ = "0.1.0"
