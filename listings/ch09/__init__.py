"""第9章 Multi-Head Attention の仕組みのコード。"""
