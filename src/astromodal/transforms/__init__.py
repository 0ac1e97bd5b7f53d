"""astromodal.transforms"""
