SHELL := /bin/bash
LINT_PATHS := sb3_shm/ tests/ benchmarks/ examples/ docs/conf.py

.PHONY: pytest test type lint format check-codestyle commit-checks doc

# The README's test command (what CI runs)
pytest test:
	python -m pytest tests

type:
	mypy sb3_shm

lint:
	ruff check $(LINT_PATHS)

format:
	ruff check --fix $(LINT_PATHS)
	ruff format $(LINT_PATHS)

check-codestyle:
	ruff format --check $(LINT_PATHS)

# What .ci/run checks before the tests
commit-checks: lint check-codestyle type

doc:
	python -m sphinx -W -b html docs docs/_build/html
