"""oncoflow.report"""
