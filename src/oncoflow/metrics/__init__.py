"""oncoflow.metrics"""
