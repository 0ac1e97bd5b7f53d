"""astromodal.data.readers"""
