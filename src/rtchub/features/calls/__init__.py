"""features/calls"""
