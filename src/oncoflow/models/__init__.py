"""oncoflow.models"""
