"""features/voice"""
