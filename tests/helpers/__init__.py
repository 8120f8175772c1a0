"""Plain helpers shared by test packages: import them from here, never from a conftest module.

conftest.py files hold only fixtures and hooks; anything a test imports by name lives in this
package, so no test depends on which conftest pytest happened to load first.
"""
