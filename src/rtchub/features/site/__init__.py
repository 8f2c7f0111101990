"""features/site"""
