"""astromodal.data"""
