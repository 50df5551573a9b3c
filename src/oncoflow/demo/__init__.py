"""oncoflow.demo"""
