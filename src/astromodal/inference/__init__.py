"""astromodal.inference"""
