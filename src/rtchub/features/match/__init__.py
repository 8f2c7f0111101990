"""features/match"""
