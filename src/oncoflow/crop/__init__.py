"""oncoflow.crop"""
