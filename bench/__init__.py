"""Benchmarks against the real Kafka broker and PostgreSQL (``python -m bench``).

Each benchmark measures a shared mechanism and, in the same run, the raw ceiling of the
infrastructure underneath it (plain asyncpg COPY, plain aiokafka producer or consumer), and
reports the ratio. Results go to ``bench/results/``; nothing here asserts on timings.
"""
