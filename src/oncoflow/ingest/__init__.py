"""oncoflow.ingest"""
