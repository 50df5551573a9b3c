"""oncoflow.train"""
