"""The sample project's tasks (the README's "Testing your tasks" example)."""
