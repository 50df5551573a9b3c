"""oncoflow.fusion"""
