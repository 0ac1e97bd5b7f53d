"""astromodal.analysis"""
