"""oncoflow.preprocess"""
